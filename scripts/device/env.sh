# device/env.sh (sourced): on the GPU machine, unpack the dependency root that prepare.sh made here
# (.deps/deproot.tar.xz: Debian's libyaml, libarchive, OpenBLAS, cmocka, nettle headers and shared libs)
# into /tmp/deproot, never into /, and point pkg-config, CMake and the loader at it.
dep=/tmp/deproot
if [ ! -d $dep/usr ]; then
  [ -f .deps/deproot.tar.xz ] || { echo "env.sh: .deps/deproot.tar.xz missing: run scripts/device/prepare.sh here and carry .deps"; exit 1; }
  mkdir -p $dep && tar -xJf .deps/deproot.tar.xz -C $dep
  # Ubuntu's gnutls (pulled in by its HDF5) needs Ubuntu's newer nettle: keep Debian's headers, link the
  # system's libnettle.so.8 / libhogweed.so.6 (same sonames, compatible ABI).
  for lib_ in nettle:8 hogweed:6; do  # names with a trailing _: this file is sourced into other scripts
    rm -f $dep/usr/lib/x86_64-linux-gnu/lib${lib_%%:*}.so.${lib_##*:}*
    ln -sf /usr/lib/x86_64-linux-gnu/lib${lib_%%:*}.so.${lib_##*:} $dep/usr/lib/x86_64-linux-gnu/lib${lib_%%:*}.so
  done
fi
export PKG_CONFIG_LIBDIR=$dep/usr/lib/x86_64-linux-gnu/pkgconfig:$dep/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dep
export CMAKE_PREFIX_PATH=$dep/usr
export LD_LIBRARY_PATH=$dep/usr/lib/x86_64-linux-gnu:$dep/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
# cuDNN from PyTorch's wheel (the machine's only cuDNN; CMake links it for IPR_UNET_CONV=cudnn): its sub-libraries
# are loaded at run time, so the loader must see their folder
cudnn_=$(python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0])" 2>/dev/null) &&
  [ -d "$cudnn_/lib" ] && export LD_LIBRARY_PATH=$cudnn_/lib:$LD_LIBRARY_PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
