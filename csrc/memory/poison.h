// Note [Sanitizers and the arena]
// The arena is one host allocation, so AddressSanitizer alone cannot see a kernel writing
// past its tensor into a neighbour. In sanitized builds every block the plan does not hold
// is poisoned: touching it is reported like a heap overflow. Blocks are unpoisoned at
// their pool size (rounded up to 256 bytes), so an overrun inside that slack goes unseen.
//
// Usage:  SN_UNPOISON(ptr, size_bytes);  ...  SN_POISON(ptr, size_bytes);
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), static_cast<size_t>(n))
#define SN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), static_cast<size_t>(n))
#else
#define SN_POISON(p, n) ((void)(p), (void)(n))
#define SN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
