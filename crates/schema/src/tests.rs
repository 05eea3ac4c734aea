//! Rules of the migration list, checked natively and on wasm32.

use crate::MIGRATIONS;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// `id checksum name` per line, one per shipped migration.
const LOCK: &str = include_str!("../migrations.lock");

#[test]
fn migrations_are_numbered_from_one_without_gaps() {
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.id as usize, index + 1, "{}", migration.name);
        assert!(
            !migration.statements.is_empty(),
            "migration {} is empty",
            migration.id
        );
    }
}

#[test]
fn shipped_migrations_are_never_edited() {
    let locked: Vec<(u32, &str)> = LOCK
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let id = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            (id, parts.next().unwrap_or(""))
        })
        .collect();
    for (id, checksum) in &locked {
        let migration = MIGRATIONS.iter().find(|m| m.id == *id);
        let current = migration.map(|m| m.checksum());
        assert_eq!(
            current.as_deref(),
            Some(*checksum),
            "migration {id} differs from migrations.lock: shipped migrations are append-only; \
             add a new migration instead of editing this one"
        );
    }
    assert_eq!(
        locked.len(),
        MIGRATIONS.len(),
        "every migration needs its line in migrations.lock; a new one adds: {}",
        MIGRATIONS
            .iter()
            .skip(locked.len())
            .map(|m| format!("\n{} {} {}", m.id, m.checksum(), m.name))
            .collect::<String>()
    );
}

#[test]
fn checksums_cover_every_statement() {
    let migration = MIGRATIONS[0];
    let mut edited = migration;
    edited.statements = &["CREATE TABLE inbox (id INTEGER PRIMARY KEY) STRICT"];
    assert_ne!(migration.checksum(), edited.checksum());
    let mut renamed = migration;
    renamed.name = "something else";
    assert_ne!(migration.checksum(), renamed.checksum());
}
