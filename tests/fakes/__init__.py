"""In-process FAKES of servers that cannot run on the test machines (see each module)."""
