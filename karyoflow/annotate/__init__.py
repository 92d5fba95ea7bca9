"""``karyoflow annotate-centromeres``: click centromeres on crops in a local web page.

:mod:`~karyoflow.annotate.session` holds the crops, the points and the CSV (the
``chr,tel,x,y`` format of the ``centromere_csv`` reader); :mod:`~karyoflow.annotate.server`
serves the page (:mod:`~karyoflow.annotate.page`) and its JSON endpoints with the
standard library's ``ThreadingHTTPServer``.
"""

from karyoflow.annotate.server import make_server, serve
from karyoflow.annotate.session import AnnotationSession, list_crops, read_annotations

__all__ = ["AnnotationSession", "list_crops", "make_server", "read_annotations", "serve"]
