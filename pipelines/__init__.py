"""KFP pipelines: factories that wire the components; compiled YAML lives in pipelines/compiled/."""
