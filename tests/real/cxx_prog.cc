// cxx_prog.cc - a C++ program that test_programs.sh runs with and without
// pmalloc preloaded: new/delete (sized and aligned too), std::thread,
// std::string and the containers, all through malloc. Prints a digest.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct alignas(128) Wide {
    unsigned char b[200];
};

static std::uint64_t work(int seed)
{
    std::map<std::string, std::vector<int>> m;
    std::unordered_map<int, std::string> u;
    std::uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 40000; i++) {
        std::string k = "key" + std::to_string((i * 7 + seed) % 3000);
        auto &v = m[k];
        v.push_back(i);
        if (v.size() > 20)
            v.erase(v.begin(), v.begin() + 10);
        u[i % 5000] = std::string(static_cast<size_t>(i % 200), static_cast<char>('a' + i % 26));
        if (i % 3 == 0) {
            auto w = std::make_unique<Wide>();          // aligned new and delete
            if (reinterpret_cast<std::uintptr_t>(w.get()) % 128)
                return 0;
            w->b[i % 200] = static_cast<unsigned char>(i);
            h = (h ^ w->b[i % 200]) * 1099511628211ull;
        }
        int *arr = new int[static_cast<size_t>(i % 100 + 1)];
        arr[0] = i;
        h = (h ^ static_cast<std::uint64_t>(arr[0])) * 1099511628211ull;
        delete[] arr;
        long *one = new long(i);
        ::operator delete(one, sizeof(long)); // sized delete
    }
    for (auto &kv : m)
        for (int x : kv.second)
            h = (h ^ static_cast<std::uint64_t>(x) ^ kv.first.size()) * 1099511628211ull;
    for (int i = 0; i < 5000; i++)
        h = (h ^ u[i].size()) * 1099511628211ull;
    return h;
}

int main()
{
    std::vector<std::uint64_t> out(6);
    std::vector<std::thread> ts;
    for (int t = 0; t < 6; t++)
        ts.emplace_back([t, &out] { out[static_cast<size_t>(t)] = work(t); });
    for (auto &t : ts)
        t.join();
    void *al = ::operator new(1000, std::align_val_t(4096));
    bool ok = reinterpret_cast<std::uintptr_t>(al) % 4096 == 0;
    ::operator delete(al, 1000, std::align_val_t(4096)); // sized aligned delete
    for (int t = 0; t < 6; t++)
        std::printf("thread %d: %016llx\n", t,
                    static_cast<unsigned long long>(out[static_cast<size_t>(t)]));
    std::printf("aligned new: %s\n", ok ? "ok" : "bad");
    return 0;
}
