"""Versioned schema migrations, applied in order at start inside one transaction each.

A migration is never edited once released; a change is a new entry at the end.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            created_at REAL NOT NULL
        );
        CREATE TABLE servers (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            manifest_json TEXT NOT NULL,
            runtime_hash TEXT NOT NULL,
            install_dir TEXT NOT NULL,
            installed_at REAL NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE profiles (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            slug TEXT NOT NULL UNIQUE,
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE profile_servers (
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            server_name TEXT NOT NULL,
            PRIMARY KEY (profile_id, server_name)
        );
        CREATE TABLE sandbox_events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            server TEXT NOT NULL,
            profile_id INTEGER,
            event TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX sandbox_events_at ON sandbox_events(at);
        """,
    ),
)
