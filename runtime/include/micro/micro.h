// Everything a user of generated code needs, in one include.
#ifndef MICRO_MICRO_H_
#define MICRO_MICRO_H_

#include "micro/broker.h"
#include "micro/client.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "micro/errors.h"
#include "micro/executor.h"
#include "micro/interceptor.h"
#include "micro/registry.h"
#include "micro/schema.h"
#include "micro/selector.h"
#include "micro/server.h"
#include "micro/service.h"
#include "micro/stream.h"
#include "micro/transport.h"

#endif  // MICRO_MICRO_H_
