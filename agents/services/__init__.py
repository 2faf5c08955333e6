"""Every write and every decision of the agents app (HackSoft style), split by subject."""
