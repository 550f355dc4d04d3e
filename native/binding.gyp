{
  "targets": [
    {
      "target_name": "ctpipe",
      "sources": [
        "src/addon.c",
        "src/util.c",
        "src/sockopt.c",
        "src/nlsock.c",
        "src/netns.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
