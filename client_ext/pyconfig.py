"""Print what the build needs to know about this interpreter, one per line:
version, include directory, extension suffix, and where its packages are
installed for an installation prefix (argv[1]), relative to that prefix when
the interpreter reads packages there, else absolute (its own site-packages).

meson 1.0's python module asks distutils, which Python 3.12 removed; this asks
sysconfig, which every supported interpreter has."""

import os
import sys
import sysconfig


def install_dir(prefix):
    prefix = os.path.realpath(prefix)
    # A directory under the prefix that this interpreter already searches
    # (Debian: /usr/local/lib/python3.X/dist-packages for /usr/local).
    for p in sys.path:
        p = os.path.realpath(p)
        if p.startswith(prefix + os.sep) and os.path.basename(p) in (
            "site-packages",
            "dist-packages",
        ):
            return os.path.relpath(p, prefix)
    # Otherwise the interpreter's own package directory, so that
    # `meson install` makes `import tracepatch` work in it.
    return sysconfig.get_path("platlib")


print("%d.%d" % sys.version_info[:2])
print(sysconfig.get_path("include"))
print(sysconfig.get_config_var("EXT_SUFFIX"))
print(install_dir(sys.argv[1]))
