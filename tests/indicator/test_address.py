"""Where the status page is: the LAN address and the URL."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from appliance.indicator.address import Address, lan_ip, page_address

from . import statuses as s


def test_address_short_and_url():
    here = Address("192.168.1.23", 8080)
    assert here.short == "192.168.1.23:8080"
    assert here.url == "http://192.168.1.23:8080/"


def test_address_ipv6_in_brackets():
    assert Address("fd00::5", 80).url == "http://[fd00::5]:80/"


def test_address_without_network():
    nowhere = Address(None, 8080)
    assert nowhere.short == "no network"
    assert nowhere.url is None


def test_page_address_uses_a_fixed_host_as_is():
    web = s.config().web  # host = "127.0.0.1" in the test config
    assert page_address(web) == Address("127.0.0.1", 8080)


def test_page_address_of_all_interfaces_is_the_lan_address():
    web = replace(s.config().web, host="0.0.0.0", port=9000)
    found = page_address(web)
    assert found.port == 9000
    assert found.ip == lan_ip()


def test_lan_ip_is_an_address_or_none():
    ip = lan_ip()
    assert ip is None or ipaddress.ip_address(ip)
