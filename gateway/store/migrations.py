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
    (
        2,
        # Users, tokens, tool toggles, consent and vault-sealed credentials (issue 4).
        """
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            token_hash BLOB NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            last_used_at REAL,
            revoked_at REAL
        );
        CREATE INDEX api_tokens_user ON api_tokens(user_id);
        CREATE INDEX api_tokens_profile ON api_tokens(profile_id);
        CREATE TABLE tool_settings (
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            server_name TEXT NOT NULL,
            tool TEXT NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            updated_at REAL NOT NULL,
            PRIMARY KEY (profile_id, server_name, tool)
        );
        CREATE TABLE consents (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            server_name TEXT NOT NULL,
            runtime_hash TEXT NOT NULL,
            version TEXT NOT NULL,
            manifest_json TEXT NOT NULL,
            granted_at REAL NOT NULL,
            revoked_at REAL,
            PRIMARY KEY (user_id, server_name, runtime_hash)
        );
        CREATE TABLE credentials (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            server_name TEXT NOT NULL,
            credential_id TEXT NOT NULL,
            sealed BLOB NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (user_id, server_name, credential_id)
        );
        CREATE TABLE vault_canary (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sealed BLOB NOT NULL,
            created_at REAL NOT NULL
        )
        """,
    ),
    (
        3,
        """
        CREATE TABLE egress_audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            sandbox_id TEXT NOT NULL,
            server TEXT NOT NULL,
            profile TEXT NOT NULL,
            user TEXT NOT NULL,
            method TEXT NOT NULL,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            path TEXT NOT NULL,
            status INTEGER NOT NULL,
            bytes_up INTEGER NOT NULL,
            bytes_down INTEGER NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX egress_audit_at ON egress_audit(at);
        CREATE INDEX egress_audit_server ON egress_audit(server, at);
        """,
    ),
    (
        4,
        # OAuth connected accounts: vendor clients, pending authorizations, tokens (all secrets vault-sealed).
        """
        CREATE TABLE oauth_vendors (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            authorize_url TEXT NOT NULL,
            token_url TEXT NOT NULL,
            revoke_url TEXT NOT NULL DEFAULT '',
            issuer TEXT NOT NULL DEFAULT '',
            client_id TEXT NOT NULL,
            client_secret BLOB,
            scopes TEXT NOT NULL DEFAULT '',
            pkce INTEGER NOT NULL DEFAULT 1 CHECK (pkce IN (0, 1)),
            token_auth TEXT NOT NULL DEFAULT 'client_secret_basic',
            source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'env')),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE oauth_states (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            state_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            vendor_id INTEGER NOT NULL REFERENCES oauth_vendors(id) ON DELETE CASCADE,
            verifier BLOB NOT NULL,
            binding_hash TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX oauth_states_expires ON oauth_states(expires_at);
        CREATE TABLE oauth_accounts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            vendor_id INTEGER NOT NULL REFERENCES oauth_vendors(id) ON DELETE CASCADE,
            access_token BLOB NOT NULL,
            refresh_token BLOB,
            scope TEXT NOT NULL DEFAULT '',
            obtained_at REAL NOT NULL,
            expires_at REAL,
            generation INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'connected' CHECK (status IN ('connected', 'reconnect_required')),
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            refreshed_at REAL,
            UNIQUE (user_id, vendor_id)
        )
        """,
    ),
    (
        5,
        # OIDC login (issue 7): identities by (issuer, subject), browser sessions (only hashes), pending
        # logins kept in the store (so a login survives a restart and works across replicas), tool calls.
        """
        CREATE TABLE oidc_identities (
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
            email TEXT NOT NULL DEFAULT '',
            display_name TEXT NOT NULL DEFAULT '',
            roles TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            last_login_at REAL NOT NULL,
            PRIMARY KEY (issuer, subject)
        );
        CREATE TABLE web_sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash BLOB NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            revoked_at REAL
        );
        CREATE INDEX web_sessions_user ON web_sessions(user_id);
        CREATE INDEX web_sessions_expires ON web_sessions(expires_at);
        CREATE TABLE oidc_flows (
            state_hash TEXT PRIMARY KEY,
            binding_hash TEXT NOT NULL,
            nonce TEXT NOT NULL,
            verifier TEXT NOT NULL,
            return_to TEXT NOT NULL DEFAULT '/',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX oidc_flows_expires ON oidc_flows(expires_at);
        CREATE TABLE oidc_used_codes (
            code_hash TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        );
        CREATE TABLE tool_calls (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            user TEXT NOT NULL,
            profile_id INTEGER,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            error_class TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX tool_calls_at ON tool_calls(at);
        CREATE INDEX tool_calls_user ON tool_calls(user, id);
        CREATE INDEX tool_calls_server ON tool_calls(server, id)
        """,
    ),
    (
        6,
        # Per-profile read-only and safe mode (gateway/modes.py); the gateway-wide flags add to these.
        """
        ALTER TABLE profiles ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1));
        ALTER TABLE profiles ADD COLUMN safe_mode INTEGER NOT NULL DEFAULT 0 CHECK (safe_mode IN (0, 1))
        """,
    ),
    (
        7,
        # Audit rows carry the id they had in the spool (gateway/store/spool.py): replaying a segment
        # after a crash inserts each row once, whether or not its batch was committed before.
        """
        ALTER TABLE tool_calls ADD COLUMN spool_id TEXT;
        CREATE UNIQUE INDEX tool_calls_spool_id ON tool_calls(spool_id) WHERE spool_id IS NOT NULL;
        ALTER TABLE egress_audit ADD COLUMN spool_id TEXT;
        CREATE UNIQUE INDEX egress_audit_spool_id ON egress_audit(spool_id) WHERE spool_id IS NOT NULL
        """,
    ),
)
