// Serves routeguide.RouteGuide, all four kinds of RPC, until SIGINT or
// SIGTERM. The map is a handful of made-up features.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <vector>

#include "absl/time/clock.h"
#include "common/cli.h"
#include "route_guide/points.h"
#include "routeguide/route_guide.micro.h"

namespace {

using route_guide::MakePoint;

using routeguide::Feature;
using routeguide::Point;
using routeguide::Rectangle;
using routeguide::RouteNote;
using routeguide::RouteSummary;

std::vector<Feature> MakeMap() {
  std::vector<Feature> features;
  const struct {
    const char* name;
    int latitude, longitude;
  } kPlaces[] = {{"Lighthouse", 407838351, -746143763},
                 {"Old mill", 408122808, -743999179},
                 {"Stone bridge", 413628156, -749015468},
                 {"Ferry landing", 419999544, -740371136}};
  for (const auto& place : kPlaces) {
    Feature feature;
    feature.set_name(place.name);
    *feature.mutable_location() = MakePoint(place.latitude, place.longitude);
    features.push_back(feature);
  }
  return features;
}

bool SamePoint(const Point& a, const Point& b) {
  return a.latitude() == b.latitude() && a.longitude() == b.longitude();
}

bool Between(int value, int a, int b) { return value >= std::min(a, b) && value <= std::max(a, b); }

bool Inside(const Rectangle& rectangle, const Point& point) {
  return Between(point.latitude(), rectangle.lo().latitude(), rectangle.hi().latitude()) &&
         Between(point.longitude(), rectangle.lo().longitude(), rectangle.hi().longitude());
}

// Metres between two points on the great circle (haversine).
double Distance(const Point& a, const Point& b) {
  constexpr double kScale = 1e7, kRadius = 6371000, kPi = 3.14159265358979323846;
  auto radians = [&](int degrees) { return degrees / kScale * kPi / 180; };
  double dlat = radians(b.latitude() - a.latitude());
  double dlon = radians(b.longitude() - a.longitude());
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) + std::cos(radians(a.latitude())) *
                                                           std::cos(radians(b.latitude())) *
                                                           std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kRadius * std::atan2(std::sqrt(h), std::sqrt(1 - h));
}

class RouteGuideHandler final : public routeguide::RouteGuide::Handler {
 public:
  absl::Status GetFeature(micro::ServerContext*, const Point* point, Feature* feature) override {
    *feature->mutable_location() = *point;
    for (const Feature& known : map_) {
      if (SamePoint(known.location(), *point)) feature->set_name(known.name());
    }
    return absl::OkStatus();
  }

  absl::Status ListFeatures(micro::ServerContext*, const Rectangle* rectangle,
                            micro::ServerWriter<Feature>* writer) override {
    for (const Feature& feature : map_) {
      if (Inside(*rectangle, feature.location()) && !writer->Write(feature)) {
        return absl::CancelledError("the client stopped listening");
      }
    }
    return absl::OkStatus();
  }

  absl::Status RecordRoute(micro::ServerContext*, micro::ServerReader<Point>* reader,
                           RouteSummary* summary) override {
    absl::Time start = absl::Now();
    Point point, previous;
    double distance = 0;
    while (reader->Read(&point)) {
      summary->set_point_count(summary->point_count() + 1);
      for (const Feature& feature : map_) {
        if (SamePoint(feature.location(), point)) {
          summary->set_feature_count(summary->feature_count() + 1);
        }
      }
      if (summary->point_count() > 1) distance += Distance(previous, point);
      previous = point;
    }
    summary->set_distance(static_cast<int>(distance));
    summary->set_elapsed_time(static_cast<int>(absl::ToInt64Seconds(absl::Now() - start)));
    return absl::OkStatus();
  }

  absl::Status RouteChat(micro::ServerContext*,
                         micro::ServerReaderWriter<RouteNote, RouteNote>* stream) override {
    RouteNote note;
    while (stream->Read(&note)) {
      std::vector<RouteNote> earlier;
      {
        std::lock_guard lock(mu_);
        for (const RouteNote& old : notes_) {
          if (SamePoint(old.location(), note.location())) earlier.push_back(old);
        }
        notes_.push_back(note);
      }
      for (const RouteNote& old : earlier) {
        if (!stream->Write(old)) return absl::CancelledError("the client stopped listening");
      }
    }
    return absl::OkStatus();
  }

 private:
  const std::vector<Feature> map_ = MakeMap();
  std::mutex mu_;
  std::vector<RouteNote> notes_;  // Guarded by mu_.
};

}  // namespace

int main(int argc, char** argv) {
  micro::examples::BlockStopSignals();
  auto flags = micro::examples::ParseFlags(argc, argv, {});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "route_guide_server");
  RouteGuideHandler handler;
  micro::Server server(transport);
  if (absl::Status status = routeguide::RegisterRouteGuideHandler(server, handler); !status.ok()) {
    std::fprintf(stderr, "route_guide_server: %s\n", status.ToString().c_str());
    return 1;
  }
  micro::examples::ServeUntilStopped(server, "route_guide_server", flags["nats"]);
  return 0;
}
