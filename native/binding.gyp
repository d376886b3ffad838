{
  "targets": [
    {
      "target_name": "fole_native",
      "sources": ["module.c", "aead.c", "read-ahead.c", "write-back.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
