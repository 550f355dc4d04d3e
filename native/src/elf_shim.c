// libelf for the vendored libbpf, opened with dlopen(3) when the BPF
// programs are loaded rather than linked: the addon then loads on a
// machine without libelf.so.1 (its socket options and namespaces work
// there), and only the bpf method says it needs libelf (Debian: libelf1,
// a dependency of iproute2, so almost always there). Debian's libelf.a is
// not position-independent, so it cannot be linked into the addon either.
// Each function libbpf calls is defined here (hidden, so nothing outside
// the addon sees them) and forwards to libelf's own.
#include <dlfcn.h>
#include <stdio.h>
#include <libelf.h>
#include <gelf.h>
#include "elf_shim.h"

#define ELF_FUNCS(X) \
  X(Elf64_Ehdr *, elf64_getehdr, (Elf *e), (e)) \
  X(Elf64_Shdr *, elf64_getshdr, (Elf_Scn *s), (s)) \
  X(Elf64_Ehdr *, elf64_newehdr, (Elf *e), (e)) \
  X(Elf *, elf_begin, (int fd, Elf_Cmd c, Elf *r), (fd, c, r)) \
  X(int, elf_end, (Elf *e), (e)) \
  X(const char *, elf_errmsg, (int n), (n)) \
  X(Elf_Data *, elf_getdata, (Elf_Scn *s, Elf_Data *d), (s, d)) \
  X(int, elf_getphdrnum, (Elf *e, size_t *n), (e, n)) \
  X(Elf_Scn *, elf_getscn, (Elf *e, size_t i), (e, i)) \
  X(int, elf_getshdrnum, (Elf *e, size_t *n), (e, n)) \
  X(int, elf_getshdrstrndx, (Elf *e, size_t *n), (e, n)) \
  X(Elf_Kind, elf_kind, (Elf *e), (e)) \
  X(Elf *, elf_memory, (char *p, size_t n), (p, n)) \
  X(size_t, elf_ndxscn, (Elf_Scn *s), (s)) \
  X(Elf_Data *, elf_newdata, (Elf_Scn *s), (s)) \
  X(Elf_Scn *, elf_newscn, (Elf *e), (e)) \
  X(Elf_Scn *, elf_nextscn, (Elf *e, Elf_Scn *s), (e, s)) \
  X(Elf_Data *, elf_rawdata, (Elf_Scn *s, Elf_Data *d), (s, d)) \
  X(char *, elf_strptr, (Elf *e, size_t i, size_t o), (e, i, o)) \
  X(int64_t, elf_update, (Elf *e, Elf_Cmd c), (e, c)) \
  X(unsigned int, elf_version, (unsigned int v), (v)) \
  X(int, gelf_getclass, (Elf *e), (e)) \
  X(GElf_Ehdr *, gelf_getehdr, (Elf *e, GElf_Ehdr *d), (e, d)) \
  X(size_t, gelf_getnote, (Elf_Data *d, size_t o, GElf_Nhdr *r, size_t *n, size_t *de), (d, o, r, n, de)) \
  X(GElf_Phdr *, gelf_getphdr, (Elf *e, int i, GElf_Phdr *d), (e, i, d)) \
  X(GElf_Shdr *, gelf_getshdr, (Elf_Scn *s, GElf_Shdr *d), (s, d)) \
  X(GElf_Sym *, gelf_getsym, (Elf_Data *d, int i, GElf_Sym *s), (d, i, s)) \
  X(GElf_Versym *, gelf_getversym, (Elf_Data *d, int i, GElf_Versym *s), (d, i, s)) \
  X(GElf_Verdef *, gelf_getverdef, (Elf_Data *d, int o, GElf_Verdef *s), (d, o, s)) \
  X(GElf_Verdaux *, gelf_getverdaux, (Elf_Data *d, int o, GElf_Verdaux *s), (d, o, s))

#define POINTER(ret, name, params, args) static ret (*real_##name) params;
ELF_FUNCS(POINTER)

// Called only after ct_elf_open() succeeded (bpf_load.c checks first).
#define FORWARD(ret, name, params, args) \
  __attribute__((visibility("hidden"))) ret name params { return real_##name args; }
ELF_FUNCS(FORWARD)

int ct_elf_open(char *err, size_t errlen) {
  static int done;
  if (done) return 0;
  void *lib = dlopen("libelf.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errlen, "libelf.so.1 is not installed, which loading BPF programs needs (Debian: apt-get install libelf1)");
    return -1;
  }
#define RESOLVE(ret, name, params, args) \
  if (!(*(void **)&real_##name = dlsym(lib, #name))) { \
    snprintf(err, errlen, "libelf.so.1 has no %s", #name); \
    return -1; \
  }
  ELF_FUNCS(RESOLVE)
  done = 1;
  return 0;
}
