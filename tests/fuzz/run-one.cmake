# run-one.cmake - one bounded fuzz run for CTest:
#   cmake -DFUZZER=<harness> -DSEEDS=<checked-in corpus> -DWORK=<scratch folder>
#         [-DDICT=<dictionary>] [-DSECONDS=15] -P run-one.cmake
# Copies the seeds to WORK/corpus, fuzzes for SECONDS, leaves any crash input in
# WORK/artifacts (the path is printed) and fails the test when the harness fails.
if(NOT FUZZER OR NOT SEEDS OR NOT WORK)
  message(FATAL_ERROR "usage: cmake -DFUZZER=... -DSEEDS=... -DWORK=... -P run-one.cmake")
endif()
if(NOT SECONDS)
  set(SECONDS 15)
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()
set(args -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
         -artifact_prefix=${WORK}/artifacts/)
if(DICT)
  list(APPEND args -dict=${DICT})
endif()
if(NOT DEFINED ENV{UBSAN_OPTIONS})
  set(ENV{UBSAN_OPTIONS} print_stacktrace=1)
endif()
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); input(s) kept: ${found}\n"
                      "reproduce: ${FUZZER} <input>")
endif()
