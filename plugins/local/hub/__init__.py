"""The local hub: ingests what devices publish, keeps the registry, answers the
AWS IoT shadow topics, tracks commands and runs the alert engine. It runs inside
the console (the default) or headless as ``smartiot hub`` for a team."""
