// zlib (the zlib licence): inflate for the deflated members of NumPy's .npz archives, and
// CRC-32 to check every member. A system library, linked by the Datasets module.
#include <zlib.h>

// inflateInit2 is a macro over inflateInit2_, which Swift cannot call.
static inline int specbench_inflate_init_raw(z_stream *stream) {
  return inflateInit2(stream, -MAX_WBITS);
}
