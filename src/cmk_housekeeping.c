/* cmk_housekeeping.c - the token's chores: finish what crashed processes left (creations,
 * rotations, imports), destroy keys past their pending window and imported material past
 * its expiry, rotate keys whose rotation is due.
 *
 * They need a logged-in user (private backend objects are invisible before), so they
 * run at C_Login, and again at C_OpenSession of an application that stays logged in,
 * at most once per CMK_HOUSEKEEPING_INTERVAL: a long-running server that logged in
 * once still sees its keys rotate and expire. The time check costs a clock read.
 *
 * Recovery is a claim, not a guess. Half-made work carries its owner in the store (a
 * Creating row its creator_pid and _start, a rotation rotating_pid and _start, an import
 * importing_pid and _start). A process that finds the owner dead first takes the work
 * over with store_claim_move, one write transaction matching that dead owner, and only
 * then destroys material; it ends the work (row deleted, claim released) and writes the
 * audit row in one transaction matching itself as the owner. So each undo is done and
 * audited once, a recovery that read the row before someone else finished or redid the
 * work does nothing, and a live owner's claim is never taken: only the owner promotes or
 * releases it. Whoever holds the claim on material that is not yet live may destroy what
 * carries its identity; one that lost its claim destroys only the object it made. A purge
 * destroys inside the write transaction that deletes the row, and a key destroyed at once
 * is made due in a transaction of its own first. */
#include "cmk.h"
#include "cmk_import.h"
#include "module.h"
#include "util.h"

#define CMK_HOUSEKEEPING_INTERVAL 60 /* seconds */

static int64_t last_run; /* util_now() of the last run in this process; atomic */

/* The chores make and destroy token objects, which needs a read/write session; the
 * application's may be read-only (pkcs11-tool signs in one), so they get their own,
 * which shares the application's login. */
void cmk_housekeeping(CK_SESSION_HANDLE caller)
{
    __atomic_store_n(&last_run, util_now(), __ATOMIC_RELAXED);
    CK_SESSION_HANDLE session = caller, own = 0;
    if (module.be.fn->C_OpenSession(module.be.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                    NULL, &own) == CKR_OK)
        session = own;
    cmk_recover(session);
    cmk_recover_rotations(session);
    cmk_import_recover(session);
    cmk_purge_due(session);
    cmk_import_expire_due(session);
    cmk_rotate_due(session);
    if (own) module.be.fn->C_CloseSession(own);
}

void cmk_housekeeping_if_due(CK_SESSION_HANDLE session)
{
    int64_t now = util_now(), last = __atomic_load_n(&last_run, __ATOMIC_RELAXED);
    if (now - last < CMK_HOUSEKEEPING_INTERVAL && now >= last) return;
    /* One thread of the process takes the turn; the others go on at once. */
    if (!__atomic_compare_exchange_n(&last_run, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    if (backend_session_logged_in(&module.be, session)) cmk_housekeeping(session);
}

void cmk_housekeeping_reset(void)
{
    __atomic_store_n(&last_run, 0, __ATOMIC_RELAXED);
}
