"""Config group 'adapters': YAML presets; registered classes add their options through the ConfigStore."""
