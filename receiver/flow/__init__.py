"""The flow of one alert: decode, intake, queue, workers, steps, verify and escalate."""
