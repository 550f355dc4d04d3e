{
  "targets": [
    {
      "target_name": "ctpipe",
      "sources": [
        "src/addon.c",
        "src/util.c",
        "src/sockopt.c",
        "src/nlsock.c",
        "src/netns.c",
        "src/bpf.c",
        "src/bpf_load.c",
        "src/elf_shim.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      # The BPF programs' CO-RE object, embedded as a header (bpf/embed.js: clang -target bpf).
      "actions": [
        {
          "action_name": "bpf_object",
          "inputs": ["bpf/sightings.bpf.c", "bpf/sighting.h", "bpf/embed.js"],
          "outputs": ["<(INTERMEDIATE_DIR)/sightings.bpf.obj.h"],
          "action": ["node", "bpf/embed.js", "bpf/sightings.bpf.c", "<(INTERMEDIATE_DIR)/sightings.bpf.obj.h"]
        }
      ],
      "include_dirs": ["<(INTERMEDIATE_DIR)", "libbpf/src", "libbpf/include/uapi"],
      # libbpf built in (hidden: nothing outside the addon sees it); libelf is opened at run time (src/elf_shim.c).
      "dependencies": ["libbpf"],
      "libraries": ["-lz", "-ldl"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    },
    {
      # The vendored libbpf (libbpf/VERSION), position-independent for the addon.
      "target_name": "libbpf",
      "type": "static_library",
      "sources": [
        "libbpf/src/bpf.c", "libbpf/src/btf.c", "libbpf/src/libbpf.c", "libbpf/src/libbpf_utils.c",
        "libbpf/src/netlink.c", "libbpf/src/nlattr.c", "libbpf/src/libbpf_probes.c", "libbpf/src/bpf_prog_linfo.c",
        "libbpf/src/btf_dump.c", "libbpf/src/hashmap.c", "libbpf/src/ringbuf.c", "libbpf/src/strset.c",
        "libbpf/src/linker.c", "libbpf/src/gen_loader.c", "libbpf/src/relo_core.c", "libbpf/src/usdt.c",
        "libbpf/src/zip.c", "libbpf/src/elf.c", "libbpf/src/features.c", "libbpf/src/btf_iter.c",
        "libbpf/src/btf_relocate.c"
      ],
      "include_dirs": ["libbpf/src", "libbpf/include", "libbpf/include/uapi"],
      "defines": ["_LARGEFILE64_SOURCE", "_FILE_OFFSET_BITS=64"],
      "cflags": ["-std=gnu89", "-O2", "-fPIC", "-fvisibility=hidden", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-sign-compare"]
    }
  ]
}
