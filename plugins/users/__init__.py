"""The Users plugin: the user directory as a console page (admins manage
people; everyone else sees why they may not)."""
