/* handles.h - object handles as clients see them.
 * A CMK's objects get handles that encode the store row and the object kind in the low
 * 32 bits, so a handle is stable for the life of the key without any table; a version
 * object (found by naming CKA_CMK_VERSION) carries its version in the high 32 bits.
 * Every other object (certificates, data objects, session keys) keeps the backend's
 * own handle. */
#ifndef CMKP11_HANDLES_H
#define CMKP11_HANDLES_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmk_record.h"

#define HANDLE_CMK_FLAG 0x40000000UL
#define HANDLE_ROW_MAX ((1L << 28) - 1)

_Static_assert(sizeof(CK_OBJECT_HANDLE) >= 8, "version handles need a 64-bit CK_ULONG");

static inline bool handle_is_cmk(CK_OBJECT_HANDLE h)
{
    return (h & 0xC0000000UL) == HANDLE_CMK_FLAG;
}

/* kind is one enum cmk_object_kind value (1, 2 or 4); encoded as 1..3 in two bits.
 * version 0 names the key itself (its primary version, whatever that is). */
static inline CK_OBJECT_HANDLE handle_for_version(int64_t row, unsigned kind,
                                                  unsigned long version)
{
    unsigned code = kind == CMK_OBJ_SECRET ? 1 : kind == CMK_OBJ_PRIVATE ? 2 : 3;
    return ((CK_OBJECT_HANDLE)version << 32) | HANDLE_CMK_FLAG | ((CK_OBJECT_HANDLE)row << 2) |
           code;
}

static inline CK_OBJECT_HANDLE handle_for_cmk(int64_t row, unsigned kind)
{
    return handle_for_version(row, kind, 0);
}

static inline int64_t handle_row(CK_OBJECT_HANDLE h)
{
    return (int64_t)((h & 0x3FFFFFFFUL) >> 2);
}

static inline unsigned handle_kind(CK_OBJECT_HANDLE h)
{
    static const unsigned kinds[4] = {0, CMK_OBJ_SECRET, CMK_OBJ_PRIVATE, CMK_OBJ_PUBLIC};
    return kinds[h & 3];
}

/* 0 for the key itself, else the version a version object stands for. */
static inline unsigned long handle_version(CK_OBJECT_HANDLE h)
{
    return (unsigned long)(h >> 32);
}

#endif
