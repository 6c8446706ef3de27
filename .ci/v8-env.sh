# Sourced by .ci/run, bench/compare.sh and fuzz/run.sh (from the checkout's top): points the `v8`
# crate 152.2.0 (`v8_enable_sandbox`: V8 15.2 with its heap sandbox) at the prebuilt static
# library and its generated binding in ../shared/rusty_v8-152, because these machines cannot
# reach GitHub, from where the crate would download both. Variables already set are kept.
v8_shared="../shared/rusty_v8-152"
v8_archive="librusty_v8_ptrcomp_sandbox_release_x86_64-unknown-linux-gnu.a.gz"
v8_binding="src_binding_ptrcomp_sandbox_release_x86_64-unknown-linux-gnu.rs"
if [ -z "${RUSTY_V8_ARCHIVE:-}" ] && [ -f "$v8_shared/$v8_archive" ]; then
  RUSTY_V8_ARCHIVE="$(cd "$v8_shared" && pwd)/$v8_archive"
  export RUSTY_V8_ARCHIVE
  echo "using prebuilt V8: $RUSTY_V8_ARCHIVE" >&2
fi
if [ -z "${RUSTY_V8_SRC_BINDING_PATH:-}" ] && [ -f "$v8_shared/$v8_binding" ]; then
  RUSTY_V8_SRC_BINDING_PATH="$(cd "$v8_shared" && pwd)/$v8_binding"
  export RUSTY_V8_SRC_BINDING_PATH
fi
