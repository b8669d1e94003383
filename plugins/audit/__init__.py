"""The Audit plugin: ``smartiot audit`` and the Audit page over the audit use cases."""
