const COMMANDS: &[&str] = &[
    "app_state",
    "enroll",
    "get_route",
    "propose_reroute",
    "accept_reroute",
    "undo_reroute",
    "accepted_reroute",
    "dismiss_reroute",
    "get_stop",
    "arrive",
    "scan_parcel",
    "record_delivery",
    "record_failure",
    "new_note_id",
    "add_note",
    "sync_status",
    "sync_now",
    "save_screen",
    "set_network_profile",
    "field_test",
];

fn main() {
    // Declaring the commands makes Tauri generate one `allow-<command>` permission each, so the
    // capability file grants exactly what the UI calls.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .unwrap_or_else(|e| panic!("tauri build script failed: {e:#}"));
}
