"""Config group 'backbone': YAML presets; registered classes add their options through the ConfigStore."""
