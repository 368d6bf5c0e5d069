#!/bin/sh
# Debian packages the C++ shim builds with: compilers (g++, gfortran), cmake,
# nlohmann-json (manifest parsing) and OpenSSL's libcrypto (sha256); and
# ecCodes' command-line tools (grib_ls, grib_get, grib_compare), the independent
# GRIB reader tests/test_gribio.py checks written files with; and OpenMPI (mpirun,
# mpicc: the MPI runs of tests/test_mpi.py, mpi4py builds against it). Installs
# only what is missing; needs root or sudo for that. Called by the Makefile.
set -eu
packages="g++ gfortran cmake pkg-config nlohmann-json3-dev libssl-dev libeccodes-tools libopenmpi-dev openmpi-bin"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "error: packages$missing are missing and this user can neither install them (not root, no sudo)" >&2
  exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
