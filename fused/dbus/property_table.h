// PropertyTable: the one list of an interface's properties for an object
// that serves them from a cached Info (VolumeInfo, JobInfo). Each entry has
// the name, the D-Bus signature, whether it is constant, and the function
// that makes its value from an Info; registration (the getters) and the
// PropertiesChanged diff are both made from it, so a property cannot be
// served but forgotten in the signal. The XML in dbus/ is checked against
// what is registered by IntrospectionMatchesTheInterfaceXml.
// Threads: the table is immutable; Register's getters run where sd-bus
// serves the object (the event loop).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <sdbus-c++/IObject.h>

#include "fused/dbus/dbus_names.h"

namespace shorthorn::fused::dbus {

template <typename Info>
class PropertyTable {
 public:
  // Adds a property whose value is `value_of(info)`; values are compared
  // with != to find what changed.
  template <typename ValueOf>
  PropertyTable& Add(const char* name, const char* signature, bool constant, ValueOf value_of) {
    entries_.push_back(
        {name, signature, constant,
         [value_of](sdbus::PropertyGetReply& reply, const Info& info) { reply << value_of(info); },
         [value_of](const Info& a, const Info& b) { return value_of(a) != value_of(b); }});
    return *this;
  }

  // The names of the non-constant properties whose values differ, in table
  // order (the XML's).
  std::vector<std::string> Changed(const Info& before, const Info& after) const {
    std::vector<std::string> changed;
    for (const Entry& e : entries_) {
      if (!e.constant && e.differs(before, after)) changed.emplace_back(e.name);
    }
    return changed;
  }

  // Registers every property on `object` under `interface`, each getter
  // reading `info` (the object's cached Info, which must outlive it) when
  // sd-bus asks: Get, GetAll, PropertiesChanged, InterfacesAdded,
  // GetManagedObjects. Constant ones are flagged so; the others emit
  // PropertiesChanged.
  void Register(sdbus::IObject& object, const char* interface, const Info& info) const {
    for (const Entry& e : entries_) {
      sdbus::Flags flags;
      if (e.constant) flags.set(sdbus::Flags::CONST_PROPERTY_VALUE);
      object.registerProperty(
          interface, e.name, e.signature,
          [name = e.name, write = e.write, &info](sdbus::PropertyGetReply& reply) {
            GuardHandler(std::string("Get ") + name, [&] { write(reply, info); });
          },
          flags);
    }
  }

 private:
  struct Entry {
    const char* name;
    const char* signature;
    bool constant;
    std::function<void(sdbus::PropertyGetReply&, const Info&)> write;
    std::function<bool(const Info&, const Info&)> differs;
  };
  std::vector<Entry> entries_;
};

}  // namespace shorthorn::fused::dbus
