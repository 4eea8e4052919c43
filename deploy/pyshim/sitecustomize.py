"""Let Debian's meson 1.0 introspect Python 3.12+ interpreters.

meson 1.0's python module imports distutils, which Python 3.12 removed. While
meson configures a build for such an interpreter, deploy/check.sh puts this
directory on PYTHONPATH: it adds Debian's dist-packages as a site directory,
so setuptools' distutils shim (python3-setuptools) is found. Only the
configure step sees it; tests run without it.
"""

import site

site.addsitedir("/usr/lib/python3/dist-packages")
