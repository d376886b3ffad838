{
  "targets": [
    {
      "target_name": "fole_native",
      "sources": ["aead.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
