"""The local backend: a store on this machine (SQLite by default, or PostgreSQL)
and, as it grows, the MQTT hub fed by the fleet simulator."""
