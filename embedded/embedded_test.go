package embedded_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/embedded"
)

func TestStartMini(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	s, err := embedded.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Mini == nil {
		t.Fatal("no miniredis without REDIS_URL")
	}
	c, err := s.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Px(time.Second).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	s.Sleep(1100 * time.Millisecond)
	if n, _ := c.Do(ctx, c.B().Exists().Key("k").Build()).AsInt64(); n != 0 {
		t.Error("Sleep did not expire the key on miniredis")
	}
}

func TestStartBadURL(t *testing.T) {
	t.Setenv("REDIS_URL", "nope://")
	if _, err := embedded.Start(); err == nil {
		t.Fatal("a bad REDIS_URL was accepted")
	}
}

func ExampleMustClient() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	fmt.Println(client.Do(ctx, client.B().Ping().Build()).ToString())
	// Output: PONG <nil>
}

func TestStartRedactsPassword(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://user:s3cret@127.0.0.1:1/0")
	s, err := embedded.Start()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.Description, "s3cret") || !strings.Contains(s.Description, "user:xxxxx@") {
		t.Errorf("Description %q", s.Description)
	}
	t.Setenv("REDIS_URL", "redis://user:s3cret@127.0.0.1:port/0")
	_, err = embedded.Start()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v", err)
	}
	// URLs that do not parse, or not as intended, show no piece of the
	// password (nor the user name).
	for _, u := range []string{
		"redis://Uv5Wy:Qz7%Jk9@127.0.0.1:1",
		"redis://Uv5Wy:Qz7/Jk9@127.0.0.1:1",
		"redis://Uv5Wy:Qz7@Jk9@127.0.0.1:1",
		"redis//Uv5Wy:Qz7-Jk9@127.0.0.1:1",
		"redis:/Uv5Wy:Qz7-Jk9@127.0.0.1:1",
	} {
		t.Setenv("REDIS_URL", u)
		s, err := embedded.Start()
		text := fmt.Sprint(err)
		if s != nil {
			text += s.Description
		}
		for _, p := range []string{"Uv5", "Qz7", "z7", "Jk9", "%Jk", "/Jk", "@Jk", "-Jk"} {
			if strings.Contains(text, p) {
				t.Errorf("REDIS_URL=%s: %q shows %q", u, text, p)
			}
		}
	}
}
