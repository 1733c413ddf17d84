// The HDF5 C library (BSD-style licence; Debian's libhdf5-dev, the serial build): the weights
// file of a Keras archive, model.weights.h5. A system library, linked only by the Interchange
// module. HDF5's property lists, access flags and native types are macros that call H5open()
// or read its globals, which Swift cannot import: these functions return them.
#include <hdf5.h>

static inline hid_t specbench_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t specbench_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t specbench_h5s_all(void) { return H5S_ALL; }
static inline hid_t specbench_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t specbench_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t specbench_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline unsigned specbench_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned specbench_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
// Before the library's first use: no clean-up at exit (a damaged file HDF5 could not close would
// make it print "infinite loop closing library" as the program ends; the system frees the memory),
// and HDF5's own error stack printing off: every failure is reported by SpecBench with its path.
// Called under Interchange's HDF5 lock.
static inline herr_t specbench_h5_quiet(void) {
  static int started = 0;
  if (!started) {
    started = 1;
    H5dont_atexit();
  }
  return H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
// A scalar attribute holding one variable-length UTF-8 string, as h5py writes a Python str.
static inline herr_t specbench_h5_write_string_attribute(hid_t object, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type < 0) return -1;
  herr_t status = H5Tset_size(type, H5T_VARIABLE);
  if (status >= 0) status = H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = status >= 0 ? H5Screate(H5S_SCALAR) : -1;
  hid_t attribute = space >= 0 ? H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
  status = attribute >= 0 ? H5Awrite(attribute, type, &value) : -1;
  if (attribute >= 0) H5Aclose(attribute);
  if (space >= 0) H5Sclose(space);
  H5Tclose(type);
  return status;
}
