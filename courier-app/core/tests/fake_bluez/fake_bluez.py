#!/usr/bin/python3
"""A small fake BlueZ for integration tests of the unmodified btleplug stack.

It owns `org.bluez` on the bus at --address, exports an ObjectManager at `/` and (unless
--no-adapter) the adapter `/org/bluez/hci0` (org.bluez.Adapter1 + Properties). Devices marked
"known" are exported from the start, as BlueZ exports devices it already knows (GetManagedObjects
lists them; a device without "rssi" was not heard lately and has no RSSI property). When a
client calls StartDiscovery it plays the --scenario JSON file: every other device appears with
InterfacesAdded, then each step is one PropertiesChanged on that device's org.bluez.Device1
(its RSSI, and its ManufacturerData / ServiceData when the step says "data"), the way BlueZ
reports repeated advertisements with DuplicateData on. A "wait_for" step pauses the playback
until a file of that name exists next to the scenario file (the test's go-ahead). Only what
btleplug 0.13 / bluez-async 0.9 read is implemented. Prints READY on stdout once it owns the
name; logs to stderr.

Scenario: {"devices": [{"address", "known"?, "rssi"?, "tx_power", "manufacturer_data":
{"<company>": hex}, "service_data": {"<uuid>": hex}, "uuids": [...]}],
"steps": [{"address", "rssi"?, "data"?} or {"wait_for": "<file name>"}]}
"""

import argparse
import json
import os
import sys

try:
    import dbus
    import dbus.mainloop.glib
    import dbus.service
    from gi.repository import GLib
except ImportError as e:
    sys.stderr.write(
        f"fake_bluez: {e}: needs python3-dbus and python3-gi (run scripts/setup.sh)\n"
    )
    sys.exit(3)

PROPS = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
ADAPTER_PATH = "/org/bluez/hci0"


def log(msg):
    sys.stderr.write(f"fake_bluez: {msg}\n")
    sys.stderr.flush()


def byte_array(hex_str):
    return dbus.Array(bytes.fromhex(hex_str), signature="y")


class PropertyObject(dbus.service.Object):
    """An object whose interfaces' properties are served by org.freedesktop.DBus.Properties."""

    def __init__(self, bus, path, interfaces):
        super().__init__(bus, path)
        self.path = path
        self.interfaces = interfaces  # {interface: {name: dbus value}}

    def props_of(self, interface):
        if interface not in self.interfaces:
            raise dbus.exceptions.DBusException(
                f"no interface {interface} on {self.path}",
                name="org.freedesktop.DBus.Error.InvalidArgs",
            )
        return self.interfaces[interface]

    def update(self, interface, changed):
        self.props_of(interface).update(changed)
        self.PropertiesChanged(interface, dbus.Dictionary(changed, signature="sv"), [])

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        props = self.props_of(interface)
        if name not in props:
            raise dbus.exceptions.DBusException(
                f"no property {name}", name="org.freedesktop.DBus.Error.InvalidArgs"
            )
        return props[name]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return dbus.Dictionary(self.props_of(interface), signature="sv")

    @dbus.service.method(PROPS, in_signature="ssv")
    def Set(self, interface, name, value):
        log(f"Set {interface}.{name} = {value!r}")
        if self.props_of(interface).get(name) != value:
            self.update(interface, {name: value})

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, interface, changed, invalidated):
        pass


class Device(PropertyObject):
    def __init__(self, bus, spec):
        self.spec = spec
        path = f"{ADAPTER_PATH}/dev_{spec['address'].replace(':', '_')}"
        props = {
            "Address": dbus.String(spec["address"]),
            "AddressType": dbus.String("random"),
            "Alias": dbus.String(spec["address"].replace(":", "-")),
            "Adapter": dbus.ObjectPath(ADAPTER_PATH),
            "Paired": dbus.Boolean(False),
            "Bonded": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False),
            "Blocked": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False),
            "Connected": dbus.Boolean(False),
            "ServicesResolved": dbus.Boolean(False),
            "TxPower": dbus.Int16(spec["tx_power"]),
            "UUIDs": dbus.Array(spec.get("uuids", []), signature="s"),
        }
        if "rssi" in spec:
            props["RSSI"] = dbus.Int16(spec["rssi"])
        props.update(self.advertised_data())
        super().__init__(bus, path, {DEVICE: props, PROPS: {}})

    def advertised_data(self):
        data = {}
        if "manufacturer_data" in self.spec:
            by_company = self.spec["manufacturer_data"].items()
            data["ManufacturerData"] = dbus.Dictionary(
                {dbus.UInt16(int(k)): byte_array(v) for k, v in by_company}, signature="qv"
            )
        if "service_data" in self.spec:
            data["ServiceData"] = dbus.Dictionary(
                {dbus.String(k): byte_array(v) for k, v in self.spec["service_data"].items()},
                signature="sv",
            )
        return data


class Adapter(PropertyObject):
    def __init__(self, bus, root, scenario, release_dir):
        super().__init__(
            bus,
            ADAPTER_PATH,
            {
                ADAPTER: {
                    "Address": dbus.String("00:1A:7D:DA:71:13"),
                    "AddressType": dbus.String("public"),
                    "Name": dbus.String("fake-bluez"),
                    "Alias": dbus.String("fake-bluez"),
                    "Modalias": dbus.String("usb:v1D6Bp0246d0541"),
                    "Powered": dbus.Boolean(False),
                    "Discovering": dbus.Boolean(False),
                    "Discoverable": dbus.Boolean(False),
                    "Pairable": dbus.Boolean(False),
                    "UUIDs": dbus.Array([], signature="s"),
                },
                PROPS: {},
            },
        )
        self.bus = bus
        self.root = root
        self.scenario = scenario
        self.release_dir = release_dir
        self.steps = []
        self.devices = {}
        for spec in scenario["devices"]:
            if spec.get("known"):
                self.devices[spec["address"]] = Device(bus, spec)
                log(f"known device {spec['address']}")

    @dbus.service.method(ADAPTER, in_signature="a{sv}")
    def SetDiscoveryFilter(self, discovery_filter):
        log(f"SetDiscoveryFilter {dict(discovery_filter)!r}")

    @dbus.service.method(ADAPTER, out_signature="as")
    def GetDiscoveryFilters(self):
        names = ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData"]
        return dbus.Array(names, signature="s")

    @dbus.service.method(ADAPTER)
    def StartDiscovery(self):
        if not self.interfaces[ADAPTER]["Powered"]:
            raise dbus.exceptions.DBusException("adapter is off", name="org.bluez.Error.NotReady")
        log("StartDiscovery")
        self.update(ADAPTER, {"Discovering": dbus.Boolean(True)})
        GLib.idle_add(self.play)  # after the reply, like a radio hearing its first packets

    @dbus.service.method(ADAPTER)
    def StopDiscovery(self):
        log("StopDiscovery")
        self.update(ADAPTER, {"Discovering": dbus.Boolean(False)})

    @dbus.service.method(ADAPTER, in_signature="o")
    def RemoveDevice(self, path):
        log(f"RemoveDevice {path} (ignored)")

    def play(self):
        for spec in self.scenario["devices"]:
            if spec["address"] in self.devices:
                continue
            device = Device(self.bus, spec)
            self.devices[spec["address"]] = device
            self.root.InterfacesAdded(device.path, device.interfaces)
            log(f"InterfacesAdded {device.path}")
        self.steps = list(self.scenario["steps"])
        self.play_steps()
        return False  # once

    def play_steps(self):
        while self.steps:
            step = self.steps.pop(0)
            if "wait_for" in step:
                if not os.path.exists(os.path.join(self.release_dir, step["wait_for"])):
                    self.steps.insert(0, step)
                    GLib.timeout_add(10, self.play_steps)
                    return False
                log(f"released by {step['wait_for']}")
                continue
            device = self.devices[step["address"]]
            changed = {}
            if "rssi" in step:
                changed["RSSI"] = dbus.Int16(step["rssi"])
            if step.get("data"):
                changed.update(device.advertised_data())
            device.update(DEVICE, changed)
            log(f"PropertiesChanged {device.path} {sorted(changed)} rssi={step.get('rssi')}")
        return False


class Root(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, "/")
        self.children = []

    @dbus.service.method(OBJECT_MANAGER, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        objects = list(self.children)
        for c in self.children:
            objects.extend(getattr(c, "devices", {}).values())
        return dbus.Dictionary(
            {dbus.ObjectPath(o.path): o.interfaces for o in objects}, signature="oa{sa{sv}}"
        )

    @dbus.service.signal(OBJECT_MANAGER, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, interfaces):
        pass

    @dbus.service.signal(OBJECT_MANAGER, signature="oas")
    def InterfacesRemoved(self, path, interfaces):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", required=True, help="D-Bus address of the (private) bus")
    ap.add_argument("--scenario", help="JSON file: devices and advertisement steps")
    ap.add_argument("--no-adapter", action="store_true", help="BlueZ with no adapter")
    args = ap.parse_args()

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(args.address)
    root = Root(bus)
    if not args.no_adapter:
        scenario = {"devices": [], "steps": []}
        release_dir = None
        if args.scenario:
            with open(args.scenario, encoding="utf-8") as f:
                scenario = json.load(f)
            release_dir = os.path.dirname(os.path.abspath(args.scenario))
        root.children.append(Adapter(bus, root, scenario, release_dir))
    name = dbus.service.BusName("org.bluez", bus, do_not_queue=True)
    log(f"owns {name.get_name()} on {args.address}; adapter: {not args.no_adapter}")
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
