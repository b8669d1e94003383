"""Domain services: logic over ports that every backend shares."""
