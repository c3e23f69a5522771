"""sparklet.runtime: see the README's roadmap; filled in by the engine and shuffle issues."""
