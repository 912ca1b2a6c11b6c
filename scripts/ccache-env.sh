# Sourced by the build scripts. ccache: one cache for every checkout of the
# sources. Paths are hashed relative to the checkout (base_dir) and the
# working directory is left out of the hash (debug info then names the
# checkout that filled the cache).
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/kubegate-ccache}"
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=1
