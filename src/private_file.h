/* private_file.h - opening the files cmkp11 keeps for itself (the store and the files
 * beside it, the log) so that nobody else can slip another file in their place. */
#ifndef CMKP11_PRIVATE_FILE_H
#define CMKP11_PRIVATE_FILE_H

#include <stddef.h>

#define PRIVATE_FILE_WHY_SIZE 256

/* Opens path with flags (O_RDWR, O_WRONLY | O_APPEND, O_RDONLY; O_CREAT creates it 0600),
 * never through a symbolic link and never blocking on a FIFO, and keeps it only when it is
 * a regular file owned by this user or root that others cannot write, in a folder that
 * others cannot write unless its sticky bit keeps their hands off other users' files.
 * Returns the descriptor (close-on-exec), or -1 with errno set and why saying which rule
 * failed, for the caller's one log line. */
int private_file_open(const char *path, int flags, char why[PRIVATE_FILE_WHY_SIZE]);

#endif
