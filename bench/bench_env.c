/*
 * Module lifetime inside the benchmark process.
 */
#include "bench_env.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static const char *env_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* On failure the module is left finalised. */
static int env_login_open(struct bench_env *env)
{
	CK_RV rv;

	rv = p11_session_open(env->fn, env->slot, &env->session);
	if (rv != CKR_OK) {
		p11_report(env->module_name, "C_OpenSession", rv);
		env_session_stop(env);
		return -1;
	}
	rv = p11_session_login(env->fn, env->session, env->pin);
	if (rv != CKR_OK) {
		p11_report(env->module_name, "C_Login", rv);
		env_session_stop(env);
		return -1;
	}
	return 0;
}

static int env_initialize(struct bench_env *env)
{
	CK_RV rv = p11_module_initialize(env->fn);

	if (rv != CKR_OK) {
		p11_report(env->module_name, "C_Initialize", rv);
		return -1;
	}
	env->initialized = 1;
	return 0;
}

int env_session_start(struct bench_env *env)
{
	if (env_initialize(env) != 0)
		return -1;
	return env_login_open(env);
}

void env_session_stop(struct bench_env *env)
{
	if (env->session != CK_INVALID_HANDLE) {
		env->fn->C_Logout(env->session);
		env->fn->C_CloseSession(env->session);
		env->session = CK_INVALID_HANDLE;
	}
	if (env->initialized)
		env->fn->C_Finalize(NULL);
	env->initialized = 0;
}

int env_open(struct bench_env *env, const char *module_path,
	     const struct p11_slot_choice *choice, const char *pin)
{
	env->module_path = module_path;
	env->module_name = env_basename(module_path);
	env->pin = pin;
	env->session = CK_INVALID_HANDLE;
	if (p11_module_load(module_path, &env->dl, &env->fn) != 0)
		return -1;
	if (env_initialize(env) != 0)
		return -1;
	if (p11_slot_resolve(env->fn, choice, &env->slot) != 0) {
		env_session_stop(env);
		return -1;
	}
	return env_login_open(env);
}

void env_close(struct bench_env *env)
{
	env_session_stop(env);
	/* dlclose is skipped: some modules leave threads or atexit hooks
	 * behind and unloading them at exit only risks a crash. */
}
