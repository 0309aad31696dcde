/* handles.h - object handles as clients see them.
 * A CMK's objects get handles that encode the store row and the object kind, so a
 * handle is stable for the life of the key without any table; every other object
 * (certificates, data objects, session keys) keeps the backend's own handle. */
#ifndef CMKP11_HANDLES_H
#define CMKP11_HANDLES_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmk_record.h"

#define HANDLE_CMK_FLAG 0x40000000UL
#define HANDLE_ROW_MAX ((1L << 27) - 1)

static inline bool handle_is_cmk(CK_OBJECT_HANDLE h)
{
    return (h & HANDLE_CMK_FLAG) != 0 && (h >> 31) == 0;
}

/* kind is one enum cmk_object_kind value (1, 2 or 4); encoded as 1..3 in two bits. */
static inline CK_OBJECT_HANDLE handle_for_cmk(int64_t row, unsigned kind)
{
    unsigned code = kind == CMK_OBJ_SECRET ? 1 : kind == CMK_OBJ_PRIVATE ? 2 : 3;
    return HANDLE_CMK_FLAG | ((CK_OBJECT_HANDLE)row << 2) | code;
}

static inline int64_t handle_row(CK_OBJECT_HANDLE h)
{
    return (int64_t)((h & ~HANDLE_CMK_FLAG) >> 2);
}

static inline unsigned handle_kind(CK_OBJECT_HANDLE h)
{
    static const unsigned kinds[4] = {0, CMK_OBJ_SECRET, CMK_OBJ_PRIVATE, CMK_OBJ_PUBLIC};
    return kinds[h & 3];
}

#endif
