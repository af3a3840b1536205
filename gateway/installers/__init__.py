"""Per-runtime installers (Python venv, Node `node_modules`, static binary) behind `gateway.installer`.

Each builds one server version into its own directory and never runs a package's install script on
the host: Python installs wheels only (`--only-binary=:all:`), Node runs `npm ci --ignore-scripts`,
and a binary is a checked file.
"""
