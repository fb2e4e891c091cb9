"""A pywbem WBEMConnection wired straight to our CIM-XML codec, without HTTP.

pywbem builds each request exactly as it would send it (its own _cim_xml builders and
headers), our parser reads it, a test handler plays the Dispatcher, our serializer answers,
and pywbem's own response parser (xml_to_tupletree_sax + TupleParser) reads the answer back.
"""
from __future__ import annotations

import pywbem
import pywbem._cim_operations as cim_operations

from provider.cimxml import (check_headers_match, parse_request, serialize_error,
                             serialize_response)


class Loopback:
    def __init__(self, monkeypatch, handler, namespace="root/cimv2", use_pull_operations=False):
        self.handler = handler
        self.requests = []     # the CIMRequests our parser produced
        self.bodies = []       # the raw request bodies pywbem sent
        self.responses = []    # the bytes our serializer produced
        monkeypatch.setattr(cim_operations, "wbem_request", self._wbem_request)
        self.conn = pywbem.WBEMConnection("http://loopback.invalid", ("u", "p"),
                                          default_namespace=namespace,
                                          use_pull_operations=use_pull_operations)

    def _wbem_request(self, conn, req_data, cimxml_headers, target_type="server"):
        body = b'<?xml version="1.0" encoding="utf-8" ?>\n' + req_data.encode("utf-8")
        self.bodies.append(body)
        headers = dict(cimxml_headers)
        request = parse_request(body)
        check_headers_match(request, headers["CIMMethod"], headers["CIMObject"])
        self.requests.append(request)
        try:
            reply = serialize_response(request, self.handler(request))
        except pywbem.CIMError as e:
            reply = serialize_error(request, e)
        self.responses.append(reply)
        return reply, None

    @property
    def last(self):
        return self.requests[-1]
