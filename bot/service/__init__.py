"""What runs the bot as a process: server, logging, health, metrics, doctor."""
