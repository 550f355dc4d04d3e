/* libelf opened at run time for the vendored libbpf (elf_shim.c). */
#ifndef CT_ELF_SHIM_H
#define CT_ELF_SHIM_H
#include <stddef.h>
/* 0 when libelf.so.1 is there with every function libbpf calls; else -1 and a one-line reason. */
int ct_elf_open(char *err, size_t errlen);
#endif
