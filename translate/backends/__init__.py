"""MT backends: CTranslate2 (default) and transformers, behind translate.backends.base."""
