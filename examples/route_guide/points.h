// Points on the route guide's map, shared by its server and client.
#ifndef MICRO_EXAMPLES_ROUTE_GUIDE_POINTS_H_
#define MICRO_EXAMPLES_ROUTE_GUIDE_POINTS_H_

#include "routeguide/route_guide.pb.h"

namespace route_guide {

inline routeguide::Point MakePoint(int latitude, int longitude) {
  routeguide::Point point;
  point.set_latitude(latitude);
  point.set_longitude(longitude);
  return point;
}

}  // namespace route_guide

#endif  // MICRO_EXAMPLES_ROUTE_GUIDE_POINTS_H_
