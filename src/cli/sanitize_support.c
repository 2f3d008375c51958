/* sanitize_support.c: linked into `ipr` only in the sanitizer build (IPR_SANITIZE, `scripts/test --sanitize`).
 * Open MPI loads its components (mca_*.so) with dlopen and unloads them in MPI_Finalize. LeakSanitizer runs at
 * exit, after the unload, and then attributes the components' never-freed allocations to whatever is mapped at
 * those addresses by then (our own binary, libipr.so, or "<unknown module>"), so no suppression can name them and
 * they look like ours. A no-op dlclose, exported by the executable so that it interposes libc's for every library,
 * keeps each loaded module mapped to the end: tests/lsan.supp then suppresses Open MPI's allocations by module, and
 * leaks of ours are still reported. Nothing else in ipr unloads a library. */
int dlclose(void *handle);

int dlclose(void *handle) {
    (void)handle;
    return 0;
}
