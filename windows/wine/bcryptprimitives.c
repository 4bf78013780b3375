/* Wine 8.0 has no bcryptprimitives.dll; Rust's standard library (pydantic-core, rpds-py,
 * cryptography wheels) imports ProcessPrng from it for random bytes and fails to load without
 * it. This one function, over advapi32's RtlGenRandom, fills the gap for the Windows test lane
 * under Wine only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
