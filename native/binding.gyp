{
  "target_defaults": {
    "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
    "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
    "cflags!": ["-fno-exceptions"]
  },
  "targets": [
    {
      # ct-events' socket, setns, socket options: no library beyond libc.
      "target_name": "ctpipe",
      "sources": [
        "src/addon.c",
        "src/util.c",
        "src/sockopt.c",
        "src/nlsock.c",
        "src/ctlines.c",
        "src/netns.c"
      ]
    },
    {
      # ct-attribute's bpf method only: the one linked with libbpf.
      "target_name": "ctpipe_bpf",
      "sources": [
        "src/util.c",
        "src/bpf.c",
        "src/bpf_load.c"
      ],
      # The BPF programs' CO-RE object, embedded as a header (bpf/embed.js: clang -target bpf).
      "actions": [
        {
          "action_name": "bpf_object",
          "inputs": ["bpf/sightings.bpf.c", "bpf/sighting.h", "bpf/embed.js"],
          "outputs": ["<(INTERMEDIATE_DIR)/sightings.bpf.obj.h"],
          "action": ["node", "bpf/embed.js", "bpf/sightings.bpf.c", "<(INTERMEDIATE_DIR)/sightings.bpf.obj.h"]
        }
      ],
      "include_dirs": ["<(INTERMEDIATE_DIR)"],
      # The system's libbpf (Debian: libbpf1, which iproute2 depends on; libbpf-dev to build), linked
      # dynamically: Debian's libbpf.a is not position-independent, and no third-party source is kept here.
      "libraries": ["-lbpf"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    }
  ]
}
