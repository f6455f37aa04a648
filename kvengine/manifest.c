/* manifest.c - placeholder until the module lands. */
typedef int sett_placeholder_manifest;
