//! `swift-object-expirer CONFIG [once] [-v]`: deletes the objects whose
//! `X-Delete-At` has passed, as listed in the `.expiring_objects` queue,
//! each `interval` seconds (`[object-expirer]` of object-server.conf), or
//! one pass with `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<object_server::expirer::ObjectExpirer>()
}
