"""Is a function fastgrad's own? By module and qualified name, so module reloads (as notebooks
do with ``importlib.reload``) do not turn fastgrad's classes into strangers."""


def is_fastgrad_function(func, *qualnames):
    """True when ``func`` is one of fastgrad's functions named by ``qualnames``."""
    module = getattr(func, "__module__", "") or ""
    return module.startswith("fastgrad.") and getattr(func, "__qualname__", None) in qualnames


def is_fastgrad_instance(obj, *class_names):
    """True when ``obj``'s class or one of its bases is a fastgrad class named ``class_names``."""
    return any(cls.__module__.startswith("fastgrad.") and cls.__name__ in class_names
               for cls in type(obj).__mro__)
